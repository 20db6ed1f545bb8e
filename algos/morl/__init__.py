"""Multi-objective RL algorithms: C-MORL, preference sets, Envelope Q-learning."""
