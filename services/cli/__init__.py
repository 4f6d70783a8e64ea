"""The aiguillage command line."""
