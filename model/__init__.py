from model.tokenizer import Tokenizer
