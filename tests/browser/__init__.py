"""A real headless browser (the system chromium, driven by Selenium) on blpopq web."""
