"""The training loss — per-pixel binary cross-entropy plus a soft Dice term per image — and its IoU readout.

Cross-entropy alone is dominated by the many easy background pixels; Dice scores each image's person as
a whole, so thin parts (arms, hair) and small people still pull on the gradient.
"""

from __future__ import annotations

import keras
from keras import ops

DICE_SMOOTHING = 1.0  # keeps an empty mask with an empty prediction at zero Dice loss


@keras.saving.register_keras_serializable(package="backdrop")
class BceDiceLoss(keras.losses.Loss):
    """``bce + dice_weight × (1 − soft Dice)``, one value per image; expects probabilities, not logits."""

    def __init__(self, dice_weight: float = 1.0, name: str = "bce_dice", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
        overlap = ops.sum(y_true * y_pred, axis=(1, 2, 3))
        total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
        dice = (2 * overlap + DICE_SMOOTHING) / (total + DICE_SMOOTHING)
        return bce + self.dice_weight * (1 - dice)

    def get_config(self) -> dict:
        return {**super().get_config(), "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="backdrop")
class PersonIoU(keras.metrics.BinaryIoU):
    """IoU of the person class; soft truth (edges blurred by resizing) is thresholded at 0.5 like the prediction.

    Keras' BinaryIoU truncates the truth to integers, which would count every soft edge pixel as background.
    """

    def __init__(self, name: str = "iou", dtype=None) -> None:
        super().__init__(target_class_ids=[1], threshold=0.5, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(ops.cast(y_true >= 0.5, "float32"), y_pred, sample_weight)
