"""XtremeDistil: multi-stage distillation of transformer NER teachers into BiLSTM students."""
