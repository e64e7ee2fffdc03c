"""Implementation of nexpo.streams; import the public module instead."""
