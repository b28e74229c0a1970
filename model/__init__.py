from model.encode import Encoder
from model.roformer import RoFormerSim, RoFormerSimConfig
from model.tokenizer import Tokenizer

__all__ = ["Encoder", "RoFormerSim", "RoFormerSimConfig", "Tokenizer"]
