"""The desktop shell: window start-up, the js_api bridge, browser mode and the UI event channel.

Thin by design: it validates arguments, calls ``backend``, and shapes answers for the UI.
"""
