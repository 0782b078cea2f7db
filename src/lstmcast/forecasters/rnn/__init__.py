"""The torch families (lstm, gru): the only code that imports torch."""
