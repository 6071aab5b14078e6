"""How a compressed model spends its training budget: the `RecoveryJob` every method takes, the table of methods
(`methods`, one module per method), `[recovery]` of a matrix (`config`) and the training lent to compressors that
train as they compress (`lending`)."""
