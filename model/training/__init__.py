"""Fine-tuning the segmenter on a user's own data: dataset layout, augmentation, distillation, training."""
