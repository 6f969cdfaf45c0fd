"""Data: real photographs that ship in registry packages, camera-raw helpers and user folders."""
