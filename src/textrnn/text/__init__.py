"""Texts -> token ids (the vectorizers), and pretrained word vectors for the embedding."""

from .vectorizer import DEFAULT_MAX_TOKENS, OOV_ID, PAD_ID, TOKENIZERS, Vectorizer, load_vectorizer, make_vectorizer

__all__ = ["DEFAULT_MAX_TOKENS", "OOV_ID", "PAD_ID", "TOKENIZERS", "Vectorizer", "load_vectorizer", "make_vectorizer"]
