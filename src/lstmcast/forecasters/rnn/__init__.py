"""The recurrent families (lstm, gru): the torch module and loop (the only code that imports torch), and a torch-free numpy forward pass."""
