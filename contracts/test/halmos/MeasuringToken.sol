// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice A minimal ERC-20 (standard ABI, decoded by Solidity) that measures what each holder
///         gives away: every unit that leaves its balance and every unit of allowance it
///         grants (an approval is spend: the spender can take it later without the wallet).
contract MeasuringToken {
    mapping(address holder => uint256) public balanceOf;
    mapping(address holder => mapping(address spender => uint256)) public allowance;
    /// @notice Units that left `holder`'s balance plus allowance `holder` granted, ever.
    mapping(address holder => uint256) public given;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    /// @notice Sets an allowance as if granted (and measured) in an earlier transaction.
    function setAllowance(address holder, address spender, uint256 amount) external {
        allowance[holder][spender] = amount;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        given[msg.sender] += amount;
        return true;
    }

    function increaseAllowance(address spender, uint256 added) external returns (bool) {
        allowance[msg.sender][spender] += added;
        given[msg.sender] += added;
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        given[from] += amount;
    }
}
