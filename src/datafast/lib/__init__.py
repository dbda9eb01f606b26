"""Adapters: each an interface with an embedded (in-process) and a scaled (server) implementation."""
