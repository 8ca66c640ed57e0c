//! End to end on Anvil.
