"""The recurrent families (LSTM, GRU): the torch module and loop, and a torch-free numpy forward pass."""
