"""The recurrent families (lstm, gru).

The torch module and loop are the only code that imports torch; numpy_forward is a torch-free forward pass.
"""
