"""Decoding: the step interface, greedy and beam search, the shortlist, the batching rule, model
files and the Translator. Imports s2s.model, never s2s.training."""
