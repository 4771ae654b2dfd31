"""azure"""
