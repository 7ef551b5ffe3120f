"""Monitoring: reference profiles built at training and drift reports on live windows."""
