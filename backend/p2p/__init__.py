"""Peer-to-peer: the Hyperswarm sidecar (node/) and its Python side."""
