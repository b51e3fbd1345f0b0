"""PyTorch model definitions (the `torch` extra). Nothing on the runtime path imports this package."""
