"""Task code for the chapters: markov, modular, agreement."""
