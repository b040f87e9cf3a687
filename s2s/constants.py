"""Values the whole project shares, each defined once: special ids and defaults.

Every SentencePiece model the project trains uses the special ids below, so a model file never
carries them separately. The decoding and shortlist defaults are read by the configs, the
command-line tools and the service; change them here only.
"""

from __future__ import annotations

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)

# decoding: output length limit per sentence = floor(MAX_LEN_A * source pieces) + MAX_LEN_B
BEAM_SIZE = 5
LENGTH_PENALTY = 1.0          # GNMT alpha
MAX_LEN_A = 1.5
MAX_LEN_B = 10
DECODE_BATCH_TOKENS = 4000    # padded source pieces per decoding batch (rows x longest)

# lexical shortlist built at the end of training (s2s.shortlist)
SHORTLIST_PER_SOURCE = 30
SHORTLIST_FREQUENT = 300
