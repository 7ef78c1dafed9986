"""genrekit: music genre prediction from audio with CNN and RNN ensembles."""

from .audio import audio_info, load_audio
from .exceptions import AudioError, DatasetError, GenrekitError, ParameterError
from .models import create_model, list_models
from .predict import Classifier, Prediction, load

__version__ = "0.1.0"
