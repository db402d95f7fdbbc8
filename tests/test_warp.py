"""Tests of warp."""




