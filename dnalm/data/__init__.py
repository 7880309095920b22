"""Reading, normalising, labelling, tokenizing and batching DNA sequence data."""
