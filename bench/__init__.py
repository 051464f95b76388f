"""`make bench`: scale, speed and memory of every stage, each against a peer and the limit.

Dev infrastructure, like the simulator: it drives the product through its CLI in child
processes (so each stage's wall time and peak RSS are its own) and is never imported by it.
"""
