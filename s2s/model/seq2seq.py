"""Seq2Seq: encoder, bridge to the decoder's initial state, attention decoder, output layer.

Two ways in: ``forward`` (teacher forcing, the training loss) and the step interface that
search drives (``encode_for_steps``, ``output_space``, ``decode_step``; see
s2s.inference.step). The model knows nothing of search or training.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s.config import ModelConfig
from s2s.constants import PAD_ID
from s2s.model.decoder import Decoder, DecoderState, EncoderOutput
from s2s.model.encoder import Encoder
from s2s.model.loss import fused_output_loss
from s2s.model.output import OutputLayer, OutputSpace


class Bridge(nn.Module):
    """Maps the encoder's final states to the decoder's initial states (learned, tanh)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layers = config.dec_layers
        size = config.dec_layers * config.dec_hidden
        self.hidden = nn.Linear(config.enc_hidden, size)
        self.cell = nn.Linear(config.enc_hidden, size) if config.cell == "lstm" else None

    def forward(self, final_hidden: torch.Tensor, final_cell: torch.Tensor | None) -> DecoderState:
        """final_hidden, final_cell: (batch, enc_hidden) -> state of (layers, batch, dec_hidden)."""
        def expand(linear: nn.Linear, state: torch.Tensor) -> torch.Tensor:
            out = torch.tanh(linear(state))
            return out.view(state.size(0), self.layers, -1).transpose(0, 1).contiguous()

        cell = None
        if self.cell is not None:
            assert final_cell is not None, "an LSTM encoder (config.cell) gives a final cell"
            cell = expand(self.cell, final_cell)
        return DecoderState(expand(self.hidden, final_hidden), cell, None)


def uniform_init(module: nn.Module, init_range: float, glorot: bool = False) -> None:
    """Every parameter uniform(-init_range, init_range), or with ``glorot`` every matrix
    (embeddings, projections, LSTM weights) Glorot-uniform instead; the padding rows of
    embeddings stay zero."""
    with torch.no_grad():
        for param in module.parameters():
            if glorot and param.dim() > 1:
                nn.init.xavier_uniform_(param)
            else:
                nn.init.uniform_(param, -init_range, init_range)
        for embedding in module.modules():
            if isinstance(embedding, nn.Embedding) and embedding.padding_idx is not None:
                embedding.weight[embedding.padding_idx].zero_()


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int):
        super().__init__()
        self.config = config
        self.encoder = Encoder(src_vocab_size, config)
        self.bridge = Bridge(config)
        self.decoder = Decoder(tgt_vocab_size, config)
        self.output = OutputLayer(config.dec_hidden, tgt_vocab_size)
        if config.init != "torch":
            uniform_init(self, config.init_range, glorot=config.init == "glorot")
        if config.tie_embeddings:
            self.output.linear.weight = self.decoder.embed.weight

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> tuple[EncoderOutput,
                                                                          DecoderState]:
        """src: (batch, src_len); src_lens: (batch,) -> encoder output, initial decoder state."""
        memory, final_hidden, final_cell = self.encoder(src, src_lens)
        src_mask = src != PAD_ID
        keys = self.decoder.attention.project_keys(memory)
        return EncoderOutput(memory, keys, src_mask), self.bridge(final_hidden, final_cell)

    # ---- the step interface (s2s.inference.step.StepModel) --------------------------------
    def encode_for_steps(self, src: torch.Tensor, src_lens: torch.Tensor
                         ) -> tuple[EncoderOutput, DecoderState]:
        """encode() for decode_step: the memory comes projected (Decoder.project_memory)."""
        encoded, state = self.encode(src, src_lens)
        return self.decoder.project_memory(encoded), state

    def output_space(self, shared: torch.Tensor, own: torch.Tensor, own_valid: torch.Tensor
                     ) -> OutputSpace:
        """Let decode_step score only these ids: shared (S,) sorted, for every sentence (the
        special ids first, so they keep their positions); own (batch, P) each sentence's
        other ids, padding where own_valid (batch, P) is False. Log-probabilities are then
        over each sentence's output space: the shared ids, then its own."""
        return self.output.space(shared, own, own_valid, self.decoder.embed.weight.dtype)

    def decode_step(self, prev_tokens: torch.Tensor, encoded: EncoderOutput,
                    state: DecoderState, space: OutputSpace | None = None
                    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoder step. prev_tokens: (rows,) vocabulary ids, rows = sentences x group
        -> log-probabilities (rows, tgt_vocab) (or (rows, C) over ``space``), the new state,
        attention weights (rows, src_len)."""
        attentional, state, weights = self.decoder(prev_tokens.unsqueeze(1), encoded, state)
        attentional = attentional.squeeze(1)
        logits = self.output(attentional).float() if space is None else space.logits(attentional)
        return torch.log_softmax(logits, dim=-1), state, weights.squeeze(1)

    # ---- teacher forcing ---------------------------------------------------------------
    def teacher_forced(self, src: torch.Tensor, src_lens: torch.Tensor,
                       tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns attentional vectors (batch, tgt_len, dec_hidden) and attention weights
        (batch, tgt_len, src_len) for the target prefix ``tgt_in`` (batch, tgt_len)."""
        encoded, state = self.encode(src, src_lens)
        attentional, _, weights = self.decoder(tgt_in, encoded, state)
        return attentional, weights

    def forward(self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor,
                tgt_out: torch.Tensor | None, smoothing: float = 0.0,
                chunk_rows: int = 1024) -> torch.Tensor:
        """Summed label-smoothed cross-entropy over the real (non-pad) tokens of ``tgt_out``.

        src: (batch, src_len); src_lens: (batch,); tgt_in, tgt_out: (batch, tgt_len).
        Logits are computed only for real positions (s2s.model.loss). With ``tgt_out`` None:
        the attentional vectors (batch, tgt_len, dec_hidden) instead, for a loss computed
        outside the model with its output layer (``output.linear``); called this way, a wrapper
        such as DDP still sees the forward pass.
        """
        attentional, _ = self.teacher_forced(src, src_lens, tgt_in)
        if tgt_out is None:
            return attentional
        real = tgt_out != PAD_ID
        linear = self.output.linear
        return fused_output_loss(attentional[real], linear.weight, linear.bias, tgt_out[real],
                                 smoothing, chunk_rows)

    def sentence_losses(self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor,
                        tgt_out: torch.Tensor) -> torch.Tensor:
        """Per-sentence summed NLL without smoothing: (batch,), in row order."""
        attentional, _ = self.teacher_forced(src, src_lens, tgt_in)
        log_probs = torch.log_softmax(self.output(attentional).float(), dim=-1)
        token_nll = -log_probs.gather(2, tgt_out.unsqueeze(2)).squeeze(2)
        return (token_nll * (tgt_out != PAD_ID)).sum(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def upgrade_state_dict(state_dict: dict[str, torch.Tensor], version: int
                       ) -> dict[str, torch.Tensor]:
    """Weights saved by file format ``version`` under today's names: version 1 kept the output
    projection at ``output.weight`` / ``output.bias`` (now ``output.linear.*``)."""
    if version >= 2:
        return state_dict
    renamed = {"output.weight": "output.linear.weight", "output.bias": "output.linear.bias"}
    return {renamed.get(key, key): value for key, value in state_dict.items()}
