"""Time-frequency features as torch nn.Modules that live inside the model."""

from audiorep.features.base import Feature, make_window
from audiorep.features.cqt import CQT
from audiorep.features.griffin_lim import griffin_lim, spectral_convergence
from audiorep.features.spectral import (
    MFCC,
    STFT,
    LogMel,
    Mel,
    Waveform,
    dct_matrix,
    mel_filterbank,
)

__all__ = [
    "CQT",
    "MFCC",
    "STFT",
    "Feature",
    "LogMel",
    "Mel",
    "Waveform",
    "dct_matrix",
    "griffin_lim",
    "make_window",
    "mel_filterbank",
    "spectral_convergence",
]
