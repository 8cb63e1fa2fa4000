"""Plain ``nn.Module`` model code: SEMat (SAM, HQ-SAM, SAM2 forms) and SGHM. No I/O here."""
