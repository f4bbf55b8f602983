"""What can change a prediction: data, protocols, spans, labels, settings, encoders, the
feature cache, training helpers and the method contract. Imports nothing from the layers above."""
