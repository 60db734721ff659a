"""fprt.trainer — PyTorch training of Siamese embedding networks, pair scorers and subset classifiers."""
