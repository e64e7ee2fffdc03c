"""Implementation of nexpo.supervision; import the public module instead."""
