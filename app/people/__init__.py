"""People: persons with a Norwegian national identity number, organisations and care units."""
