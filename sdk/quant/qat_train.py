"""The SDK trainer on a fake-quantized model (`sdk.quant.qat`): same loss, augmentation, EMA and validation;
only its checkpoints differ, because a QAT model's state dict (folded BatchNorm, activation ranges) is not the
unfused layout `load_checkpoint` reads."""
from ..train.trainer import Trainer
from .qat import load_qat_model, save_qat_checkpoint


class QATTrainer(Trainer):
    """`Trainer` whose best.pt / last.pt are QAT checkpoints (`save_qat_checkpoint`): plain SDK checkpoints of
    the QAT weights plus the fixed activation ranges. last.pt holds the EMA weights and cannot resume a run."""

    def _save(self, name, epoch, resumable):
        if not self.save:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_qat_checkpoint(self.eval_model, self.out_dir / name, epoch=epoch, best_fitness=self.best_fitness,
                            best_epoch=self.best_epoch, history=self.history, imgsz=self.imgsz)

    def best_model(self):
        if self.save and (self.out_dir / "best.pt").is_file():
            return load_qat_model(self.out_dir / "best.pt")[0]
        return self.eval_model
