"""The chapters' tasks: markov (chapters 01-02), modular (03), grokking_time (04), agreement and
agreement_corpus (05), architecture (07)."""
