"""StructShot (Few-NERD): NNShot with a Viterbi decoder over abstract transitions, on episodes."""
