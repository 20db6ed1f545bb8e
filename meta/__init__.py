"""Meta-learning of RL algorithms (LPG, GROOVE, LPO), built on ``jaxrl_suite.algos``."""
