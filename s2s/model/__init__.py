"""The network: encoder, attention, decoder, output layer, loss. Imports nothing from
s2s.inference or s2s.training."""

from s2s.model.seq2seq import Seq2Seq, count_parameters, upgrade_state_dict

__all__ = ["Seq2Seq", "count_parameters", "upgrade_state_dict"]
