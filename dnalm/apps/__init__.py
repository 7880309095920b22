"""Shared helpers of the applications beyond classification (embed, generate, scan, variants, design)."""
