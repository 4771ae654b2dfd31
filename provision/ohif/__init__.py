"""ohif"""
