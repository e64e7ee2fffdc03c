"""Implementation of nexpo.actors and the supervisor core; import the public modules instead."""
