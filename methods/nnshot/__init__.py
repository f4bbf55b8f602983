"""NNShot (Few-NERD): nearest support word on episodes."""
