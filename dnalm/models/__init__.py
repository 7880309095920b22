"""Backbones, pooling, heads and the LightningModule that ties them together."""
