"""Train or fine-tune YOLOv7 models on the CPU (see `sdk.train.trainer` for the Trainer and its extension points)."""
