"""A reproducible benchmark harness for fine-grained NER methods on Few-NERD."""

__version__ = "0.1.0"
