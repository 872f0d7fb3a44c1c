"""Fakes of the messengers and a scripted chat, for the tests and the benchmarks."""
