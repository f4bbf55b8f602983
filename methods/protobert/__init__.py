"""ProtoBERT (Few-NERD): nearest prototype per word on episodes."""
