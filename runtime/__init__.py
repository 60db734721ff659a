"""fprt.runtime — `fprt score`: backends, the scoring pipeline and the similarity extension."""
