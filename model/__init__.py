from model.roformer import RoFormerSim, RoFormerSimConfig
from model.tokenizer import Tokenizer

__all__ = ["RoFormerSim", "RoFormerSimConfig", "Tokenizer"]
