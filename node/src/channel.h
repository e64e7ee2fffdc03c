/* Channels of byte messages for Node: the native half of node/lib/channel.js. */
#pragma once
#include <node_api.h>

/* Adds exports._channel, the native functions node/lib/channel.js builds Channel on. */
napi_status nexpo_node_register_channels(napi_env env, napi_value exports);
